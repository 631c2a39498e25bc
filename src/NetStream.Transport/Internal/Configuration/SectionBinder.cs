using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace NetStream.Transport.Internal;

/// <summary>
/// Binds the <c>NetStream</c> section with the configuration binder, after checking its keys, and reports what is wrong
/// as <see cref="OptionsValidationException"/> failures that name the key and the value. Two things the binder does not
/// do are done here:
/// <list type="bullet">
/// <item>Unknown keys in a section several option types share: <c>NetStream</c> carries the transport's and the hosted
/// server's options, an endpoint its own and the transport's. The binder's <c>ErrorOnUnknownConfiguration</c> checks one
/// type, and would call the other type's keys unknown. Shapes it silently ignores are reported too: a single value where
/// a section or a list belongs (<c>Hooks:Allow = 10.0.0.0/8</c> would leave the allow list empty), a section where a
/// single value belongs.</item>
/// <item>Every value that does not convert, named with its key: binding stops at the first, names the key and the type
/// but not the value, and drops a dictionary entry (an endpoint) whose value fails without a word.</item>
/// </list>
/// Values are converted by the binder itself; rules on them are the options validators'.
/// </summary>
internal static partial class SectionBinder
{
    /// <summary>Binds <paramref name="section"/> onto <paramref name="options"/> after checking its keys against <paramref name="sharing"/> too.</summary>
    public static void Bind(IConfigurationSection section, object options, IEnumerable<Type> sharing)
    {
        var errors = new List<string>();
        CheckKeys(section, [options.GetType(), .. sharing], errors);
        if (errors.Count == 0)
        {
            Bind(section, options);
            return;
        }

        throw new OptionsValidationException(Options.DefaultName, options.GetType(), errors);
    }

    /// <summary>Binds <paramref name="section"/> onto <paramref name="options"/>; a value that does not convert fails naming its key and value.</summary>
    public static void Bind(IConfigurationSection section, object options)
    {
        try
        {
            section.Bind(options);
        }
        catch (InvalidOperationException e) when (FailedValue().Match(e.Message) is { Success: true } match)
        {
            var key = match.Groups["key"].Value;
            var why = e.InnerException?.Message ?? e.Message;
            throw new OptionsValidationException(Options.DefaultName, options.GetType(), [$"{key} = '{section[RelativeTo(section, key)]}': {why}"]);
        }
    }

    private static string? ConversionFailure(IConfigurationSection section, Type type)
    {
        try
        {
            _ = section.Get(type);
            return null;
        }
        catch (InvalidOperationException e)
        {
            return e.InnerException?.Message ?? e.Message;
        }
    }

    // The binder's "Failed to convert configuration value at 'NetStream:Backlog' to type 'System.Nullable`1[System.Int32]'."
    [GeneratedRegex("at '(?<key>[^']+)' to type")]
    private static partial Regex FailedValue();

    private static string RelativeTo(IConfigurationSection section, string key) =>
        key.StartsWith(section.Path + ConfigurationPath.KeyDelimiter, StringComparison.OrdinalIgnoreCase) ? key[(section.Path.Length + 1)..] : key;

    private static void CheckKeys(IConfigurationSection section, Type[] types, List<string> errors)
    {
        foreach (var child in section.GetChildren())
        {
            var property = types
                .Select(t => t.GetProperty(child.Key, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase))
                .FirstOrDefault(p => p is { CanRead: true });
            if (property is null)
            {
                errors.Add($"{Named(child)}: unknown key (known: {string.Join(", ", KnownKeys(types))}).");
                continue;
            }

            CheckShape(child, Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType, errors);
        }
    }

    private static void CheckShape(IConfigurationSection section, Type type, List<string> errors)
    {
        var hasChildren = section.GetChildren().Any();
        if (IsScalar(type))
        {
            if (hasChildren)
            {
                errors.Add($"{section.Path}: expected a single value, found a section.");
            }
            else if (ConversionFailure(section, type) is { } why)
            {
                // Converted here, by the binder itself, so that every bad value is reported at once: binding stops at
                // the first, and drops an entry of a dictionary (an endpoint) whose value fails without a word.
                errors.Add($"{section.Path} = '{section.Value}': {why}");
            }
        }
        else if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>))
        {
            if (section.Value is { Length: > 0 } value)
            {
                errors.Add($"{section.Path} = '{value}': expected a list ({section.Key}:0, {section.Key}:1, ... or a JSON array).");
            }

            foreach (var item in section.GetChildren().Where(item => !int.TryParse(item.Key, out _)))
            {
                errors.Add($"{item.Path}: a list takes numbered entries ({section.Key}:0, {section.Key}:1, ...).");
            }
        }
        else if (section.Value is { Length: > 0 } value)
        {
            errors.Add($"{section.Path} = '{value}': expected a section with keys {string.Join(", ", KnownKeys([type]))}.");
        }
        else if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>))
        {
            var itemTypes = PartsOf(type.GetGenericArguments()[1]);
            foreach (var item in section.GetChildren())
            {
                CheckKeys(item, itemTypes, errors);
            }
        }
        else
        {
            CheckKeys(section, PartsOf(type), errors);
        }
    }

    /// <summary>Some option types bind one section to several types; they say so with <see cref="ConfigurationPartsAttribute"/>.</summary>
    private static Type[] PartsOf(Type type) =>
        type.GetCustomAttribute<ConfigurationPartsAttribute>() is { } parts ? [type, .. parts.Types] : [type];

    private static bool IsScalar(Type type) =>
        type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(TimeSpan) || type == typeof(Uri);

    private static string Named(IConfigurationSection section) =>
        section.Value is { } value ? $"{section.Path} = '{value}'" : section.Path;

    private static IEnumerable<string> KnownKeys(IEnumerable<Type> types) => types
        .SelectMany(t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        .Select(p => p.Name)
        .Distinct()
        .Order(StringComparer.Ordinal);
}

/// <summary>Marks an option type whose configuration section also binds to other option types.</summary>
[AttributeUsage(AttributeTargets.Class)]
internal sealed class ConfigurationPartsAttribute(params Type[] types) : Attribute
{
    public Type[] Types { get; } = types;
}

/// <summary>
/// An option type that binds to the <c>NetStream</c> section next to <see cref="NetStreamTransportOptions"/>, registered in
/// the container by whoever adds it (the hosted server adds <c>NetStreamServerOptions</c>), so that neither reports the
/// other's keys as unknown.
/// </summary>
internal sealed record NetStreamSectionPart(Type OptionsType);
